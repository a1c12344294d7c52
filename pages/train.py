import streamlit as st

st.title("train")
st.write(st.query_params.to_dict())
