import streamlit as st

st.title("one_d")
st.write(st.query_params.to_dict())
